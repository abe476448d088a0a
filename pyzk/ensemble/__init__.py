"""The ensemble: how the request pipeline and the consensus core meet across servers."""
