"""tformer: the Transformer, from the paper to production."""

from tformer.decoding.translator import Translator
from tformer.interop import gguf as _gguf  # noqa: F401  registers GGUF files for CausalLM.from_pretrained
from tformer.interop import hf_bert as _hf_bert  # noqa: F401  registers the folder format of BertModel.from_pretrained
from tformer.interop import hf_causal as _hf_causal  # noqa: F401  and Hugging Face Llama/GPT-2 folders
from tformer.models import Seq2SeqTransformer, TransformerConfig
from tformer.models.bert import BertConfig, BertForSequenceClassification, BertModel
from tformer.models.bert_qa import BertForQuestionAnswering
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.models.pipelines import SentenceEncoder, TextClassifier
from tformer.models.qa_pipeline import QuestionAnswerer
from tformer.pipeline import pipeline
from tformer.text.pretrained import Tokenizer

__version__ = "0.1.0"

__all__ = [
    "BertConfig",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertModel",
    "CausalLM",
    "CausalLMConfig",
    "QuestionAnswerer",
    "Seq2SeqTransformer",
    "SentenceEncoder",
    "TextClassifier",
    "Tokenizer",
    "TransformerConfig",
    "Translator",
    "__version__",
    "pipeline",
]
