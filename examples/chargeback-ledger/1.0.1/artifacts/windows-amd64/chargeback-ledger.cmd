@echo off
echo chargeback-ledger 1.0.1 (windows/amd64)
