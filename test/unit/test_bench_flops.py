"""The FLOP count of the published architecture (meta device; no model is run)."""


def test_flop_count_of_the_published_architecture():
    """The counts quoted in the speed issue (H200 analysis): encoder 1.32, U-Net 0.96 (+ FE), decoder 2.95."""
    from depthmaster_ros.model.architectures import SD2_UNET_CONFIG, SD2_VAE_CONFIG
    from depthmaster_ros.model.flops import stage_flops

    flops = {k: v / 1e12 for k, v in stage_flops(SD2_UNET_CONFIG, SD2_VAE_CONFIG, 1, 480, 640).items()}
    assert abs(flops["encode"] - 1.32) < 0.01 and abs(flops["decode"] - 2.95) < 0.01
    assert 0.96 < flops["unet"] < 0.98  # SD2 U-Net + the FE block's ~0.011


