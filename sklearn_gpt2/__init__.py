"""Fine-tune GPT-2 for text classification as a scikit-learn estimator."""

from ._classifier import GPT2SequenceClassifier
from ._model import clear_checkpoint_cache

__version__ = "0.1.0"

__all__ = ["GPT2SequenceClassifier", "__version__", "clear_checkpoint_cache"]
