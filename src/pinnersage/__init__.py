"""pinnersage: multi-interest user profiles (PinnerSage, KDD 2020).

A user's actions are clustered with Ward's method, each cluster is summarised by its medoid item
and a time-decayed importance, and a few medoids sampled by importance query an ANN index.
"""

from pinnersage.core.baselines import decay_average, last_item
from pinnersage.core.importance import importance
from pinnersage.core.medoid import medoid_index
from pinnersage.core.profile import InterestCluster, InterestProfile, build_profile
from pinnersage.core.sampling import sample_medoids, top_medoids
from pinnersage.core.ward import ward_clusters, ward_labels, ward_merges
from pinnersage.errors import (
    ConfigError,
    CorruptArtifactError,
    DataFormatError,
    DimensionMismatchError,
    EmbeddingVersionMismatchError,
    InvalidVectorsError,
    MissingDependencyError,
    PinnerSageError,
    PinnerSageWarning,
    ProfileNotFoundError,
    UnknownItemError,
)
from pinnersage.params import (
    BatchParams,
    Config,
    IndexParams,
    LogParams,
    ProfileParams,
    RetrievalParams,
    load_config,
)

__version__ = "0.1.0"

__all__ = [
    "BatchParams",
    "Config",
    "ConfigError",
    "CorruptArtifactError",
    "DataFormatError",
    "DimensionMismatchError",
    "EmbeddingVersionMismatchError",
    "IndexParams",
    "InterestCluster",
    "InterestProfile",
    "InvalidVectorsError",
    "LogParams",
    "MissingDependencyError",
    "PinnerSageError",
    "PinnerSageWarning",
    "ProfileNotFoundError",
    "ProfileParams",
    "RetrievalParams",
    "UnknownItemError",
    "__version__",
    "build_profile",
    "decay_average",
    "importance",
    "last_item",
    "load_config",
    "medoid_index",
    "sample_medoids",
    "top_medoids",
    "ward_clusters",
    "ward_labels",
    "ward_merges",
]
