"""Repair: making an installed prefix relocatable (grafts, RUNPATHs, the text fix-ups
applied, the CA fallback and the console-script hooks)."""
