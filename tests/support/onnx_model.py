"""A tiny ONNX prompt-injection classifier and tokenizer, built on the fly for tests.

The model is an embedding bag: each token id has one weight, the weights of the unmasked tokens
are summed, a bias is added and a sigmoid taken, so `attack` tokens push the score up and the
expected score of any text can be computed by hand (`expected_score`). Needs the `onnx` extra
(onnx, onnxruntime, tokenizers); callers skip or fail as they see fit when it is missing.
"""

from __future__ import annotations

import math
from pathlib import Path

VOCAB = {"[PAD]": 0, "[UNK]": 1, "hello": 2, "world": 3, "attack": 4, "please": 5}
WEIGHTS = {"attack": 4.0}
BIAS = -3.0


def expected_score(attacks: int) -> float:
    """The model's probability for a text with `attacks` occurrences of the word `attack`."""
    return 1.0 / (1.0 + math.exp(-(attacks * WEIGHTS["attack"] + BIAS)))


def build_model(path: Path) -> None:
    """Write the embedding-bag model to `path` (model.onnx)."""
    import onnx
    from onnx import TensorProto, helper

    embedding = [[WEIGHTS.get(token, 0.0)] for token in sorted(VOCAB, key=VOCAB.__getitem__)]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["embedded"]),  # [b, t, 1]
        helper.make_node("Squeeze", ["embedded", "last"], ["per_token"]),  # [b, t]
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["per_token", "mask"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "tokens_axis"], ["total"], keepdims=1),  # [b, 1]
        helper.make_node("Add", ["total", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    graph = helper.make_graph(
        nodes,
        "embedding_bag",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
        initializer=[
            helper.make_tensor(
                "table", TensorProto.FLOAT, [len(VOCAB), 1], [w[0] for w in embedding]
            ),
            helper.make_tensor("bias", TensorProto.FLOAT, [1], [BIAS]),
            helper.make_tensor("last", TensorProto.INT64, [1], [2]),
            helper.make_tensor("tokens_axis", TensorProto.INT64, [1], [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_tokenizer(path: Path) -> None:
    """Write a whitespace WordLevel tokenizer over `VOCAB` to `path` (tokenizer.json)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))


def build_classifier_dir(folder: Path) -> Path:
    """`folder` with model.onnx and tokenizer.json in it, as a workload would mount them."""
    folder.mkdir(parents=True, exist_ok=True)
    build_model(folder / "model.onnx")
    build_tokenizer(folder / "tokenizer.json")
    return folder
