"""immute.proxy"""
