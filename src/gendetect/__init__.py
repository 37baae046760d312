"""gendetect: tell real photographs from generated images."""
