"""Front-ends translate a network description into rfgraph's graph schema (and nothing else)."""
