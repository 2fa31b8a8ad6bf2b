"""Task balancing: how the per-task losses become one training step.

One class per method, each in its own module; :data:`BALANCERS` maps the
``task_balancing`` names to them. Adding a method is one module and one
line here. Every method sees the static ``task_weights``, which multiply
each task's loss whatever the method.

* ``"fixed"`` (:class:`~.base.Balancer`): the sum weighted by
  ``task_weights``.
* ``"uncertainty"`` (:class:`~.uncertainty.Uncertainty`): learned
  log-variances, Kendall, Gal & Cipolla, CVPR 2018.
* ``"dwa"`` (:class:`~.dwa.DynamicWeightAverage`): weights from the ratio of
  each task's last two epoch losses, Liu, Johns & Davison, CVPR 2019.
* ``"gradnorm"`` (:class:`~.gradnorm.GradNorm`): learned weights that even
  out the tasks' gradient norms on the last shared layer, Chen et al.,
  ICML 2018.
* ``"pcgrad"`` (:class:`~.pcgrad.PCGrad`): conflicting gradients projected
  away on the shared trunk, Yu et al., NeurIPS 2020.
"""

from .base import Balancer
from .dwa import DynamicWeightAverage
from .gradnorm import GradNorm
from .pcgrad import PCGrad
from .uncertainty import Uncertainty

BALANCERS = {
    "fixed": Balancer,
    "uncertainty": Uncertainty,
    "dwa": DynamicWeightAverage,
    "gradnorm": GradNorm,
    "pcgrad": PCGrad,
}

__all__ = ["BALANCERS", "Balancer"]
