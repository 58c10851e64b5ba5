"""latefold: fast multi-vector (late-interaction) retrieval.

>>> import latefold as lf
>>> scores = lf.maxsim(queries, docs)                 # (n_queries, n_docs) float32
>>> top_scores, top_ids = lf.maxsim_topk(queries, docs, k=10)
"""

from ._version import __version__
from .cuda import DeviceArray, DeviceMultiVectors, cuda_available, cuda_info, to_device
from .fde import FDE
from .graph import Filter, GraphIndex
from .index import MultiVectorIndex
from .maxsim import maxsim, maxsim_rerank, maxsim_topk
from .multivectors import MultiVectors, quantize
from .pq import PackedCodes, ProductQuantizer, kmeans
from .simd import set_simd, simd_info
from . import datasets

__all__ = [
    "__version__",
    "DeviceArray",
    "DeviceMultiVectors",
    "cuda_available",
    "cuda_info",
    "to_device",
    "FDE",
    "Filter",
    "GraphIndex",
    "MultiVectorIndex",
    "MultiVectors",
    "datasets",
    "PackedCodes",
    "ProductQuantizer",
    "kmeans",
    "maxsim",
    "maxsim_rerank",
    "maxsim_topk",
    "quantize",
    "set_simd",
    "simd_info",
]
