<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** The ledger's store (SQLite file, Redis) failed. */
class StoreException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
