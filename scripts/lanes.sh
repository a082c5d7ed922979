# Sourced by scripts that run independent jobs side by side (scripts/fuzz.sh,
# scripts/soak.sh): at most JOBS at a time, each job's output kept in a file of
# its own and reported whole when the job ends, in the order they end.
#
# run_lanes JOBS RUN REPORT ITEM...
#   RUN ITEM LOG          runs one job (in the background), its output in LOG;
#   REPORT ITEM LOG STATUS prints what the job left and returns non-zero for a failure.
# Returns 1 when any REPORT did, after every job ended.
run_lanes() {
  local jobs=$1 run=$2 report=$3
  shift 3
  local items=("$@") logs next=0 failed=0 status done item
  local -A item_of=()
  logs=$(mktemp -d)
  while [ $next -lt ${#items[@]} ] || [ ${#item_of[@]} -gt 0 ]; do
    while [ $next -lt ${#items[@]} ] && [ ${#item_of[@]} -lt "$jobs" ]; do
      item=${items[$next]}
      "$run" "$item" "$logs/$next" &
      item_of[$!]=$next
      next=$((next + 1))
    done
    status=0
    wait -n -p done "${!item_of[@]}" || status=$?
    item=${item_of[$done]}
    unset "item_of[$done]"
    "$report" "${items[$item]}" "$logs/$item" "$status" || failed=1
  done
  rm -rf "$logs"
  return $failed
}
