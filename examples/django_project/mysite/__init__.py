"""The example project: the seed's clock, a chat, and a page that updates live on model save."""
