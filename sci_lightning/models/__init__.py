"""Networks, chosen with ``model=``; each takes ``num_classes`` and ``patch_size`` from the data."""
