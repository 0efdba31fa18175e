"""Data stages: photos on disk -> ImageRecords -> folds -> patch cache -> batched loaders."""
