"""immute.store"""
