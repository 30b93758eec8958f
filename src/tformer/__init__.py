"""tformer: the Transformer, from the paper to production."""

from tformer.decoding.translator import Translator
from tformer.models import Seq2SeqTransformer, TransformerConfig

__version__ = "0.1.0"

__all__ = ["Seq2SeqTransformer", "TransformerConfig", "Translator", "__version__"]
