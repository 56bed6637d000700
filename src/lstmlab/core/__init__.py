"""The math of the LSTM family: cells, sequence layers, losses, optimisers, init, checks, files."""
