"""quant.backends.xnnpack.partition: which partitioner an export gets, and what ours takes that the stock one does not.

That it splits delegates by paper block is checked on real exports (test_export.py's --profile-blocks test)."""
from executorch.backends.xnnpack.partition.config.generic_node_configs import BMMConfig, CatConfig, MulConfig
from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

from quant.backends.xnnpack.partition import (
    CONFIGS,
    BlockPartitioner,
    MulReluConfig,
    QuantBMMConfig,
    RepeatedCatConfig,
    xnnpack_partitioner,
)


def test_each_export_kind_gets_its_partitioner():
    assert type(xnnpack_partitioner(stock=True)) is XnnpackPartitioner
    assert type(xnnpack_partitioner()) is XnnpackPartitioner
    blocks = xnnpack_partitioner(block_of=lambda path: "stem")
    assert isinstance(blocks, BlockPartitioner) and blocks.block_of("features.0") == "stem"


def test_our_configs_replace_the_stock_ones_they_extend():
    assert not {BMMConfig, CatConfig, MulConfig} & set(CONFIGS)
    assert {QuantBMMConfig, RepeatedCatConfig, MulReluConfig} <= set(CONFIGS)
    assert ConfigPrecisionType.STATIC_QUANT in QuantBMMConfig().supported_precision_types()
    assert "relu.default" in MulReluConfig().fused_acts
