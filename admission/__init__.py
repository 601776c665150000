"""admission: the Kubernetes admission webhook that checks inference pods' models."""
