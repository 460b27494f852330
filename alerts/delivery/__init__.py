"""Delivery: turning approved alerts into emails and SMS through pluggable channels.

`messages` holds what we send, `channels` the one-class-per-provider senders and the
registry that picks them from settings.
"""
