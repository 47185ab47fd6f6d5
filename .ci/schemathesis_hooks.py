"""Schemathesis hooks for .ci/schemathesis (which names this file in
SCHEMATHESIS_HOOKS).

Schemathesis never puts a NUL into a path segment (it drops such values,
since many servers route them elsewhere), yet a NUL in `/imports/{id}` is one
of the inputs issue 7 point 5 requires a 4xx for. So some drawn path
parameters are replaced by values holding a NUL; the draw goes through
Hypothesis, so the seed still decides which.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

NUL_SEGMENTS = ["\x00", "a\x00b", "01a215a5-fa3a-730f-85c8-ed99f7907eb\x00"]


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if not isinstance(path_parameters, dict) or not path_parameters:
        return st.just(path_parameters)
    name = sorted(path_parameters)[0]
    with_nul = st.sampled_from(NUL_SEGMENTS).map(lambda value: {**path_parameters, name: value})
    return st.one_of(st.just(path_parameters), with_nul)
