"""Stream payload layouts shared by the blocks: a beat of up to ``lanes`` elements, defined once.

Every lane-parallel stream (keys into Q.K, scores out of it, scores into and probabilities out of the
softmax, probabilities into the refetch decision) carries the same three fields, LSB first: ``data``, an
:class:`~amaranth.lib.data.ArrayLayout` of the lanes (lane j at bits ``[j*w, (j+1)*w)``), ``mask``, the
live lanes (a non-empty prefix from lane 0; only a row's last beat may be partial), and ``last``, the
row's final beat.
"""

from __future__ import annotations

from amaranth.hdl import ShapeLike
from amaranth.lib import data

__all__ = ["lane_beat"]


def lane_beat(element: ShapeLike, lanes: int) -> data.StructLayout:
    """``{"data": ArrayLayout(element, lanes), "mask": lanes, "last": 1}``.

    Parameters
    ----------
    element : shape-like
        One lane's shape (a signed code, or itself an ``ArrayLayout`` for a row of codes).
    lanes : int
        Lanes per beat, >= 1.
    """
    return data.StructLayout({"data": data.ArrayLayout(element, lanes), "mask": lanes, "last": 1})
