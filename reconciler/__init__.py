"""reconciler: GitOps for Huawei Cloud MetaStudio digital assets."""

__version__ = "0.1.0"
# The name on PyPI ("reconciler" there is an unrelated project); the command stays reconciler.
DISTRIBUTION = "metastudio-reconciler"
