#!/bin/sh
# lifehook demo, scenario 1: what an instance does before it goes away. The agent runs
# this with the action's fields in its environment (never as code).
set -eu
mkdir -p logs
echo "application log of $LIFEHOOK_INSTANCE_ID ($LIFEHOOK_GROUP): last request served" > logs/app.log
echo "$LIFEHOOK_TRANSITION via hook $LIFEHOOK_HOOK: logs shipped before termination" > logs/shutdown.log
