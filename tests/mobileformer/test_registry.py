import pytest

import mobileformer as mf


def test_list_models_has_seven_variants_smallest_first():
    names = mf.list_models()
    assert names == [f"mobile_former_{v}" for v in ("26m", "52m", "96m", "151m", "214m", "294m", "508m")]


def test_short_and_full_names_build_the_same_variant():
    assert mf.create_model("26m").cfg is mf.create_model("mobile_former_26m").cfg


def test_unknown_name_lists_valid_ones():
    with pytest.raises(mf.UnknownModelError) as err:
        mf.create_model("mobile_former_27m")
    message = str(err.value)
    assert "mobile_former_27m" in message and "mobile_former_26m" in message and "mobile_former_508m" in message


def test_num_classes_and_eval_mode():
    model = mf.create_model("26m", num_classes=10)
    assert model.classifier.classifier[1].out_features == 10
    assert not model.training


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        mf.create_model("26m", num_classes=0)


def test_variant_table_is_consistent():
    for cfg in mf.VARIANTS.values():
        assert cfg.blocks[0].kind == "bneck-lite"
        assert all(row.stride == 2 for row in cfg.blocks if row.kind == "down")
        assert 3 <= cfg.token_num <= 6
