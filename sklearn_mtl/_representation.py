"""The shared representation: ``transform``, its column names, and a clone
that keeps a pretrained model (transfer between models)."""

from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from ._data import make_dataset


class RepresentationMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``transform`` to the trunk's output and what goes with it (not public)."""

    def transform(self, X):
        """The shared representation of ``X``: the trunk's output.

        The output of the trunk's last block (after its activation) with
        the network in evaluation mode: no dropout, batch norm on its
        running statistics, so it is deterministic. With
        ``architecture="mmoe"`` it is every expert's output side by side
        (columns ``e * width`` to ``(e + 1) * width`` are expert ``e``'s,
        ``width = hidden_layer_sizes[-1]``), before any task's gate weighs
        them.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_out)
            The representation, float64 (computed in float32).
            ``n_features_out`` is ``hidden_layer_sizes[-1]``, times
            ``n_experts`` with ``architecture="mmoe"``; with ``pretrained``
            the pretrained model's trunk decides it.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        self._check_trunk("transform")
        return self.net_.trunk_outputs(make_dataset(X, device=self.net_.device))

    def _check_trunk(self, method):
        if not self.net_.module_.representation_width:
            raise ValueError(
                f"{method} returns the shared trunk's output, but this "
                f"{type(self).__name__} has no trunk (hidden_layer_sizes=()); fit "
                f"it with at least one hidden layer."
            )

    @property
    def _n_features_out(self):
        """Width of ``transform``'s output (ClassNamePrefixFeaturesOutMixin)."""
        check_is_fitted(self)
        self._check_trunk("get_feature_names_out")
        return self.net_.module_.representation_width

    def get_feature_names_out(self, input_features=None):
        """Names of the columns of :meth:`transform`'s output.

        The lower-cased class name and the column's index, as scikit-learn
        names the outputs of its own transformers (e.g.
        ``["multitasknetclassifier0", "multitasknetclassifier1", ...]``).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against ``feature_names_in_`` (or the number of
            features) when given; the output names do not depend on it.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of ``transform(X)``.
        """
        check_is_fitted(self)
        return super().get_feature_names_out(input_features)

    def __sklearn_clone__(self):
        # scikit-learn's clone clones estimator-valued parameters, which would
        # drop the fit of the pretrained model. It is read, never modified, so
        # the clone shares it (as FrozenEstimator's clone is itself): searches
        # and cross-validation then work with a bare fitted model too.
        clone = super().__sklearn_clone__()
        if self.pretrained is not None and not isinstance(self.pretrained, FrozenEstimator):
            clone.pretrained = self.pretrained
        return clone
