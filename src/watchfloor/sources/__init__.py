"""Sources: one module per platform behind one interface (see :mod:`.base`)."""
