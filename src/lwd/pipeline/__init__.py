"""Pipeline stages run by `lwd run` and the CLI: collect, pretrain (SFT), offline train, online loop, report."""
