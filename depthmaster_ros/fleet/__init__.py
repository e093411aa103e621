"""Depth for a whole archive of rosbags on many GPUs, on Ray: one output bag per input bag, each equal to what
depthmaster-bag writes for it. Model passes run in model actors (the model loaded once per actor, a GPU each on a
GPU cluster), fed batches from every bag; reading, pairing, the per-stream stages in frame order, post-processing
and writing run per bag in CPU tasks, with depthmaster-bag's own frame loop (``rosbag/bag_run.py``). Ray is
imported only here (optional for robots)."""
