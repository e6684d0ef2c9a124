"""Benchmarks: the DAVIS interactive track (davisinteractive) and semi-supervised J&F."""
