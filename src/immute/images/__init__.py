"""immute.images"""
