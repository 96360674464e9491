"""The built-in simulated application that ``selfmend demo`` heals."""
