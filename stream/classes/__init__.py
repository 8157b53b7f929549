"""Traffic classes and clients: what a download's user agent says about who downloaded."""

from stream.classes.classifier import AGENT_CHARS, NO_CLASS, NO_CLIENT, TRAFFIC_CLASSES, Classifier, load_classifier

__all__ = ["AGENT_CHARS", "NO_CLASS", "NO_CLIENT", "TRAFFIC_CLASSES", "Classifier", "load_classifier"]
