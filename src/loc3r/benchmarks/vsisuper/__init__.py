"""VSI-SUPER (Cambrian-S, 2025): spatial recall and counting over long (streamed) videos."""
