"""immute.runtimes"""
