"""`make demo`: the main job on the bundled defaults — translate with the bundled model and score a slice of the
Multi30k test set. Without a bundled model it demonstrates the model parts instead."""

from __future__ import annotations

import time

import torch

EXAMPLES = [
    "Ich bin Piyush.",
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau in einem roten Kleid singt auf einer Bühne.",
    "Wo ist der Bahnhof?",
]


def translation_demo() -> None:
    from tformer.data.corpus import multi30k
    from tformer.decoding.translator import Translator
    from tformer.evaluation.bleu import corpus_scores

    translator = Translator.from_pretrained()
    print(f"bundled model: {translator.model.num_parameters() / 1e6:.1f}M parameters\n")
    for src, hyp in zip(EXAMPLES, translator.translate(EXAMPLES, beam=4)):
        print(f"  {src}\n    -> {hyp}")
    test = multi30k("test_2016_flickr")
    n = 200
    start = time.time()
    hyps = translator.translate(test.src[:n], beam=4)
    scores = corpus_scores(hyps, test.tgt[:n])
    print(f"\nMulti30k test_2016_flickr, first {n} sentences, beam 4: sacreBLEU {scores.bleu:.1f}, "
          f"chrF {scores.chrf:.1f} ({time.time() - start:.1f} s)")
    print("Next: tformer translate --help, tformer evaluate --help, tformer train --help")


def parts_demo() -> None:
    from tformer import Seq2SeqTransformer, TransformerConfig

    config = TransformerConfig()
    model = Seq2SeqTransformer(config)
    print(f"The paper's base Transformer: {model.num_parameters() / 1e6:.1f}M parameters")
    small = Seq2SeqTransformer(TransformerConfig(src_vocab_size=100, tgt_vocab_size=100, d_model=64, num_heads=4,
                                                 num_encoder_layers=2, num_decoder_layers=2, d_ff=128)).eval()
    src, tgt = torch.randint(4, 100, (2, 7)), torch.randint(4, 100, (2, 5))
    print("logits shape:", tuple(small(src, tgt).shape))


def main() -> None:
    from tformer.decoding.translator import default_model_dir

    if (default_model_dir() / "model.safetensors").is_file():
        translation_demo()
    else:
        print(f"no bundled model at {default_model_dir()}; showing the model parts instead\n")
        parts_demo()


if __name__ == "__main__":
    main()
