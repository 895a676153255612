"""Step Functions definitions and continuous-training flows built on mlops_core."""
