"""The web page of tools/web_demo.py: its worker (:mod:`.worker`), its
layout (:mod:`.page`) and the rules for uploads (:mod:`.uploads`)."""
