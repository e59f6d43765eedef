"""reconciler: GitOps for Huawei Cloud MetaStudio digital assets."""

__version__ = "0.1.0"
