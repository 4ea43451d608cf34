"""``kubectl wallbounce``: the kubectl plugin for WallBounceRollouts (standard library only: it drives kubectl)."""
