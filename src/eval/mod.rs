//! Clustering evaluation (SPEC 2.6): k-means on embeddings and NMI / ARI / ACC.

pub mod kmeans;
pub mod metrics;
