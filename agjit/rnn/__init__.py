"""``mx.rnn``: MXNet 1.x's symbolic recurrent cells, the bucketing sentence iterator and RNN
checkpoints (the pre-Gluon API of MXNet's RNN examples)."""
from .rnn_cell import *  # noqa: F401,F403
from .rnn_cell import __all__ as _cells_all
from .io import encode_sentences, BucketSentenceIter  # noqa: F401
from .rnn import save_rnn_checkpoint, load_rnn_checkpoint, do_rnn_checkpoint  # noqa: F401

__all__ = list(_cells_all) + ["encode_sentences", "BucketSentenceIter", "save_rnn_checkpoint",
                              "load_rnn_checkpoint", "do_rnn_checkpoint"]
