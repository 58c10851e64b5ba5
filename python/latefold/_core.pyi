"""Stubs of the compiled module latefold._core (private: use the latefold package)."""

from typing import List, Optional, Tuple

import numpy as np

def simd_active() -> str: ...
def simd_compiled() -> List[str]: ...
def simd_supported() -> List[str]: ...
def set_simd(name: str) -> None: ...
def cpu_description() -> str: ...
def hardware_threads() -> int: ...
def _parallel_for_probe(tasks: int, threads: int, fail_task: int) -> int: ...
def validate_multivectors(tokens: np.ndarray, offsets: np.ndarray, name: str) -> None: ...
def maxsim(
    q_tokens: np.ndarray,
    q_offsets: np.ndarray,
    d_tokens: np.ndarray,
    d_offsets: np.ndarray,
    threads: Optional[int] = None,
) -> np.ndarray: ...
def maxsim_rerank(
    q_tokens: np.ndarray,
    q_offsets: np.ndarray,
    d_tokens: np.ndarray,
    d_offsets: np.ndarray,
    candidates: np.ndarray,
    threads: Optional[int] = None,
) -> np.ndarray: ...
def maxsim_topk(
    q_tokens: np.ndarray,
    q_offsets: np.ndarray,
    d_tokens: np.ndarray,
    d_offsets: np.ndarray,
    k: int,
    threads: Optional[int] = None,
) -> Tuple[np.ndarray, np.ndarray]: ...
