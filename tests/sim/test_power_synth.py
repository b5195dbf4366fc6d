"""spatten.sim.power.synth: Yosys generic-cell synthesis of an Amaranth block, cell areas by hand."""

import pytest
from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from spatten.sim.power.synth import cell_area_um2, synthesize


class Reg8(wiring.Component):
    """An 8-bit register with enable: exactly 8 flip-flops with enable and no logic."""

    d: In(unsigned(8))
    en: In(1)
    q: Out(unsigned(8))

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.d)
        return m


def test_cell_areas_are_the_nangate_figures():
    assert cell_area_um2("$_NAND_") == 0.798
    assert cell_area_um2("$_NOT_") == 0.532
    assert cell_area_um2("$_DFF_P_") == 4.522
    assert cell_area_um2("$_DFFE_PP_") == pytest.approx(4.522 + 1.862)  # flip-flop + feedback mux
    assert cell_area_um2("$_SDFF_PP0_") == pytest.approx(4.522 + 1.064)  # + sync reset gate
    assert cell_area_um2("$_DFF_PP0_") == 5.320  # async reset flip-flop
    with pytest.raises(ValueError, match=r"\$add"):
        cell_area_um2("$add")


def test_register_synthesizes_to_eight_flipflops():
    r = synthesize(Reg8(), "reg8", tech_nm=45)
    assert r.n_flipflops == 8
    assert r.n_cells == 8
    # At 45 nm no scaling: 8 enable flip-flops (reset value 0 gives a sync-reset variant or not).
    assert r.area_um2_45nm == pytest.approx(sum(n * cell_area_um2(t) for t, n in r.cells.items()))
    assert 8 * (4.522 + 1.862) <= r.area_um2_45nm <= 8 * (4.522 + 1.862 + 1.064)
    assert r.area_mm2 == pytest.approx(r.area_um2_45nm * 1e-6)


def test_zero_eliminator_synth_next_to_model():
    from spatten.rtl.zero_eliminator import ZeroEliminator
    from spatten.sim.power.area import zero_eliminator_model_mm2

    r = synthesize(ZeroEliminator(16, 16), "zero_eliminator", tech_nm=40)
    assert r.n_flipflops == 0  # the block is combinational
    model = zero_eliminator_model_mm2(16, 16, 40)
    # Two independent estimates of the same structure (gates vs adder+multiplexer models) agree within 3x.
    assert model / 3 < r.area_mm2 < 3 * model


@pytest.mark.slow
def test_rtl_crosscheck_rows():
    from spatten.sim.power.area import rtl_crosscheck

    rows = {r["block"]: r for r in rtl_crosscheck(40, topk_max_n=64)}
    assert set(rows) == {"ZeroEliminator", "TopKEngine", "QKUnit"}
    topk = rows["TopKEngine"]
    assert topk["flipflops"] >= 5 * 64 * 16  # five register-file buffers of 64 x 16-bit scores
    assert topk["model_mm2"] / 3 < topk["synth_mm2"] < 3 * topk["model_mm2"]


def test_qk_unit_synth_near_aladdin_model():
    """Aladdin multiplier/adder model and Yosys gates of QKUnit agree within 2x (the datapath dominates)."""
    from spatten.rtl.qk import QKUnit
    from spatten.sim.power.area import qk_unit_model_mm2

    r = synthesize(QKUnit(head_dim=4, k_par=1, q_width=8, k_width=8), "qk_unit", tech_nm=40)
    # flip-flops: products 4 x 16 bits, tree sums 2 x 17 and 1 x 18 bits, plus the handshake state
    assert r.n_flipflops >= 4 * 16 + 2 * 17 + 18
    model = qk_unit_model_mm2(4, 1, 8, 40)
    assert model / 2 < r.area_mm2 < 2 * model
