"""Training: YAML recipes -> dataclasses, EEG windows, losses, the DDP-capable trainer."""
