@echo off
rem Stand-in for the Chargeback Ledger binary.
echo chargeback-ledger 1.0.1 (windows/amd64)
