"""seqferry simulator: realistic Illumina run folders written over time, standing in for the sequencers."""
