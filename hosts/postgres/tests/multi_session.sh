echo multi-session: TODO
