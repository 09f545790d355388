"""RLAIF: generate, judge, build preference pairs, DPO, evaluate, gate, iterate."""
