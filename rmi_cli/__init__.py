"""rmi: the Region Mutual Information loss for semantic segmentation, and its experiment tool."""

__version__ = "0.1.0"
