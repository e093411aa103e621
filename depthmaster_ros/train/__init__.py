"""The two-stage DepthMaster training (depthmaster-method.md section 4): data, targets, losses, the loop."""
